"""The admission service (准考证与考场): seats, admission tickets, exam day."""
