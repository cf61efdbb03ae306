"""The payments service: payment intents, and authorise/capture/void/refund through a gateway port."""
