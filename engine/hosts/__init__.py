"""What every host adapter needs whatever the job: RELION's pipeline files (the output-node
list, the exit markers, the project's own pipeline) in :mod:`.relion_pipeline`. Job-specific
adapters live with their job (``jobs/<job>/hosts/``)."""
