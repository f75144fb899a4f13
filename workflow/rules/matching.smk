# Stage: matching (rules are added by the issue that builds it)
