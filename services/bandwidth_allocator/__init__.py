"""bandwidth-allocator: chooses one QoS level per analytic so that the sum of
weight x utility is as high as the measured upload budget allows (a
multiple-choice knapsack), and publishes the choice as retained knobs.

`levels` holds the level models and the solver input, `solvers` the pure
solvers; neither touches MQTT.
"""
