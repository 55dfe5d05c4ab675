"""The registration service (报名): exam sessions, applications, proof and confirmation."""
