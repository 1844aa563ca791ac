"""gunicorn settings, from the same validated LEGTRIAGE_* settings as the app (service/config.py)."""
from service.config import load_settings
from service.logs import gunicorn_logconfig_dict

_settings = load_settings()

wsgi_app = "service:create_app()"
bind = f"{_settings.host}:{_settings.port}" if ":" not in _settings.host else f"[{_settings.host}]:{_settings.port}"
workers = _settings.workers
worker_class = "sync"
loglevel = _settings.log_level
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
preload_app = True
accesslog = None  # the app logs one JSON line per request itself
errorlog = "-"
control_socket_disable = True  # gunicorn 27's control socket is not used; it would write under $HOME
logconfig_dict = gunicorn_logconfig_dict(_settings.log_level)  # gunicorn's own logs: JSON lines on stdout

# gunicorn puts "Server: gunicorn" on every response, read from this module global per response;
# name the service instead, so the banner tells nobody which server software (or version) runs.
import gunicorn.http.wsgi  # noqa: E402
gunicorn.http.wsgi.SERVER = "legtriage"
