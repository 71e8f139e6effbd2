"""jshost: run RedisGears 2 JavaScript libraries on QuickJS, behind the Redis protocol."""

__version__ = "0.1.0"
