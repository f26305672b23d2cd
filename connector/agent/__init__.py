"""The agent: APScheduler 3.11 behind a small wrapper, one agent per store, signals, health endpoint.

Modules: :mod:`~connector.agent.jobs` (what runs, planned from config), :mod:`~connector.agent.scheduler`
(the APScheduler wrapper), :mod:`~connector.agent.lock` (single-agent flock), :mod:`~connector.agent.health`
(loopback health endpoint), :mod:`~connector.agent.daemon` (lifecycle and signals).
"""

from __future__ import annotations

from connector.agent.daemon import Agent, run_agent
from connector.agent.lock import AgentAlreadyRunning, AgentLock

__all__ = ["Agent", "AgentAlreadyRunning", "AgentLock", "run_agent"]
