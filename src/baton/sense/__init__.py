"""Receivers and normalisation of every incoming signal to one `Event` shape."""
