"""Starting, watching and faulting the services of the stack."""
