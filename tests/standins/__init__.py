"""Protocol-level stand-ins for the services Troupe talks to, served on 127.0.0.1."""
