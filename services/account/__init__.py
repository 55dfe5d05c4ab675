"""The account service (账号): identity, credentials and the candidate's profile."""
