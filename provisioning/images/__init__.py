"""Base images: a bootable Debian with cloud-init and the guest agent's tools, built by
`manage.py build_image`, and put on hypervisors by `manage.py publish_image`."""
