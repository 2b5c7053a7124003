"""Jenkins: the jobs of one repository or a fleet planned and applied on a controller, the retrain
hook."""
