"""The surge rehearsal: load profiles, open-model journeys on Locust, the report and the CI gate."""
