"""Local stand-ins for the services the bot talks to, shared by the tests, the playground and the benchmarks."""
