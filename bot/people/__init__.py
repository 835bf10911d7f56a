"""Human support: alerts for the people running a study."""
