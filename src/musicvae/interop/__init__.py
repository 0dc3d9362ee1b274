"""Magenta checkpoints: TF checkpoint reading, Magenta's variable names and layouts, and the
sizes a checkpoint's shapes imply. NoteSequence TFRecords are data formats (``data.tfrecord``)."""
