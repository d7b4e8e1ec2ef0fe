"""Operations over the home: garbage collection, rerunning a recorded job, authoring."""
