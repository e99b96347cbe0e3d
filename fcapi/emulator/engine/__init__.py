"""Apps on FeatureCloud's own engine, run as processes the way their images would run them.

An app folder (FeatureCloud's app template: `main.py`, its states, `requirements.txt`, a
`Dockerfile`) is started unchanged by its own `main.py`, with a virtual environment built from
its `requirements.txt` (`venvs`), inside private mount and network namespaces (`sandbox`) that
stand in for its container: `/mnt/input` and `/mnt/output` are the step's folders and its
`localhost:5000` is its own, published to the controller on a Unix socket as nginx publishes it
on port 9000 in the image. `process` starts and stops one such app; `driver` is the
controller's loop over the app API (reference §3); `folders` is the registry of app folders by
slug and id; `testbed` is `python -m fcapi.emulator test`.
"""
