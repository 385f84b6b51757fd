"""A local playground (``python -m bot.playground``): the real bot in a browser tab, with no accounts.

It starts the upstream simulator, the fake Discord and the bot wired to both (:mod:`.world`), and a
small web server (:mod:`.web`) whose page looks like a Discord channel and updates live.
"""

from bot.playground.world import PlaygroundOptions, World, running_world

__all__ = ["PlaygroundOptions", "World", "running_world"]
