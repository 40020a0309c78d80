"""The back office at a glance: the staff's dashboard on the admin's home page, and the record of reconcile's runs."""
