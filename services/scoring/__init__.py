"""Scoring service (成绩): score imports, publication, subject passes and rolling validity."""
