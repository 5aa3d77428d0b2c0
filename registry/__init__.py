"""mmengine config files for every component, preset and suite (shipped as ``sslbench._configs``)."""
