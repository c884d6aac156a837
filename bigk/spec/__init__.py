"""Job specs: the YAML format, its hardened loader and validator, cron, gangs, operator import."""
