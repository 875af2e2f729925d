"""The app's screens: Browse, Host, Guest and the help overlay."""
