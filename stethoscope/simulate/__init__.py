"""A simulated care home: rooms, beacons, gateways and badges walking about.

It makes the traffic the server would get from a real house (``live``), and
labelled readings whose true room is known (``csv``, and in-process through
``stethoscope.simulate.traffic.labelled_readings``) for demos, load and the
trainer's tests. It is a tool beside the server, not a feature of it: the
application never imports it, and it may use numpy. See docs/simulator.md.
"""
