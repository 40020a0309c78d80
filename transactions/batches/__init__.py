"""Batches: many movements of one caller booked as one posting, all of them or none (`services.batch_create`)."""
