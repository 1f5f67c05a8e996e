"""k3sc: the portal's command-line client, a pure HTTP client of its REST API (/api/v1/).

It imports nothing of the portal: a user may install it alone.
"""

__version__ = "0.1.0"
