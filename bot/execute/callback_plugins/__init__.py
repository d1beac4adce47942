"""Ansible callback plugins shipped with the bot (a package so that installs carry them)."""
