"""``paperx loadtest``: drive a paperx server with many simulated bots over MQTT.

`schedule` says when each request is meant to leave (the offered load),
`mix` what it is, `worker` runs the lean bots of one process, `histogram`
measures latency, `venue` starts the server (and its broker) under test,
`runner` ties them together and checks the journal, `report` prints, writes
and plots the results.
"""
