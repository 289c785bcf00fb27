"""The distillation pipeline: datasets (:mod:`.data`), models (:mod:`.models`), the training loop
(:mod:`.training`), the teacher (:mod:`.teacher`), the methods as the pipeline runs them (:mod:`.methods`),
distillation (:mod:`.distill`) and the active loop (:mod:`.active`); result files (:mod:`.files`)."""
