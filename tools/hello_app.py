"""A minimal Pyramid hello-world: the ceiling the ingest app is compared with.

Served by pserve with the same [server:main] settings as the application
(tools/bench_ingest.py writes both ini files). It answers the same POSTs the
gateways send, without reading them, so that the comparison holds the
request sizes equal.
"""

from pyramid.config import Configurator
from pyramid.response import Response


def hello(request):
    return Response("Hello World!", content_type="text/plain")


def main(global_config, **settings):
    with Configurator(settings=settings) as config:
        config.add_route("hello", "/")
        config.add_route("readings", "/rssi_readings")
        config.add_view(hello, route_name="hello")
        config.add_view(hello, route_name="readings")
        return config.make_wsgi_app()
