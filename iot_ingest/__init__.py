"""Shelf and stock sensor readings over MQTT: contract, consumer, publisher, embedded broker."""
