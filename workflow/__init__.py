"""Work-order rules that are neither channel nor storage: deadlines and routing. Framework-free."""
