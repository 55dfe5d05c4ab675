"""Verification service (资格核查): eligibility rules, reference data, cases and spot checks."""
