"""Where things are: settings, the home layout, the apps path, reading pipe files."""
