# Stage: provenance (rules are added by the issue that builds it)
