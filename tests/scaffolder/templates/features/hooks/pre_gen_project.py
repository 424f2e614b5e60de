with open("pre_gen.txt", "w") as fh:
    fh.write("pre {{ cookiecutter.project_slug }}\n")
