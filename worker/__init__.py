"""Job functions and the dispatcher loop; the domain lives in bot/."""
