"""What each inbound message means. Domain code: no Flask request, no outbound I/O, only the db session."""
