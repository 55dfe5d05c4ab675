"""The notification service (通知): SMS and in-site messages (站内信) to candidates."""
