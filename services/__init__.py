"""Transport: one gRPC service per pilot, served with BentoML, plus shared server plumbing."""
