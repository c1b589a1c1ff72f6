from setuptools import find_namespace_packages, setup

requires = [
    "alembic>=1.13",
    "argon2-cffi>=23.1",
    "markdown>=3.5",
    "numpy>=1.26",
    "orjson>=3.9",
    "plaster_pastedeploy>=1.0",
    "prometheus-client>=0.20",
    "psycopg[binary]>=3.1",
    "pydantic>=2.6",
    "pyramid>=2.0",
    "pyramid_jinja2>=2.10",
    "pyramid_retry>=2.1",
    "pyramid_services>=2.2",
    "pyramid_tm>=2.5",
    "redis>=5.0",
    "scikit-learn>=1.5",
    # Pyramid 2.1 imports pkg_resources, which setuptools 81 drops.
    "setuptools<81",
    "skops>=0.10",
    "sqlalchemy>=2.0",
    "tqdm>=4.66",
    "transaction>=3.0",
    "waitress>=3.0",
    "zope.sqlalchemy>=3.0",
]

tests_require = [
    "hypothesis>=6.100",
    "openapi-schema-validator>=0.6",
    "openapi-spec-validator>=0.7",
    "playwright>=1.40",
    "pytest>=8.0",
    "pytest-cov>=5.0",
    "pytest-xdist>=3.5",
    "ruff>=0.6",
    # tests/functional/test_schemathesis.py uses schemathesis 4's Python API.
    "schemathesis>=4.32,<5",
    "webtest>=3.0",
]

setup(
    name="stethoscope",
    version="0.1.0",
    description="Room-level location of BLE badges for care homes",
    python_requires=">=3.11",
    packages=find_namespace_packages(include=["stethoscope", "stethoscope.*"]),
    include_package_data=True,
    zip_safe=False,
    install_requires=requires,
    extras_require={"testing": tests_require},
    entry_points={
        "paste.app_factory": ["main = stethoscope:main"],
        "console_scripts": [
            "initialize_stethoscope_db = stethoscope.scripts.initialize_db:main",
            "stethoscope-user = stethoscope.scripts.users:main",
            "stethoscope-gateway = stethoscope.scripts.gateways:main",
            "stethoscope-import = stethoscope.scripts.labelled_import:main",
            "stethoscope-export = stethoscope.scripts.labelled_export:main",
            "stethoscope-train = stethoscope.scripts.train:main",
            "stethoscope-evaluate = stethoscope.scripts.evaluate:main",
            "stethoscope-models = stethoscope.scripts.models:main",
            "stethoscope-simulate = stethoscope.scripts.simulate:main",
            "stethoscope-alerts = stethoscope.alerts.script:main",
            "stethoscope-prune = stethoscope.scripts.prune:main",
            "stethoscope-house = stethoscope.scripts.house:main",
        ],
    },
)
