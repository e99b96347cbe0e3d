"""fcapi speaks FeatureCloud.ai: the website API, each site's controller, a CLI and an emulator.

It knows no machines: fedinfra brings hosts up and the runner drives fcapi across them.
"""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/fedstack/fedstack"
USER_AGENT = f"fedstack/{__version__} (+{PROJECT_URL})"

DEFAULT_WEBSITE_URL = "https://featurecloud.ai"
DEFAULT_CONTROLLER_URL = "http://localhost:8000"
