"""One adapter per messenger. Each turns platform updates into `Incoming` and sends `Reply`."""
