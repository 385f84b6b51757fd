"""Local simulator of OdiRouter's queue API (``python -m bot.simulator``); see :mod:`bot.simulator.app`."""

from bot.simulator.app import (
    SIMULATOR_KEY,
    TRUNCATED_JSON,
    Fault,
    RecordedCall,
    SimJob,
    Simulator,
    SimulatorOptions,
    create_app,
    run_simulator,
    validate_submit,
)

__all__ = [
    "SIMULATOR_KEY",
    "TRUNCATED_JSON",
    "Fault",
    "RecordedCall",
    "SimJob",
    "Simulator",
    "SimulatorOptions",
    "create_app",
    "run_simulator",
    "validate_submit",
]
