"""The one place that knows Meta: the Graph API client, its answers, rate-limit usage, the governor, tokens, insights fetching."""
