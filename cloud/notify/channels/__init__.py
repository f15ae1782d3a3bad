"""Delivery channels: one small class per channel behind :class:`~cloud.notify.channels.base.Channel`."""

from cloud.notify.channels.base import Channel, ChannelError, OutboundMessage

__all__ = ["Channel", "ChannelError", "OutboundMessage"]
