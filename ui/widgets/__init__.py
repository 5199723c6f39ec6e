"""Windows, dialogs and views of the desktop app."""
