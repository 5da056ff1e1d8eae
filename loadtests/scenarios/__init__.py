"""Traffic scenarios for locust: shoppers on the pixel, publishers asking for ads, browsers
showing (and now and then clicking) the ads they got. ``loadtests/locustfile.py`` re-exports
the user classes; the rest of the package is what they share."""
