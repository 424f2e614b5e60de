import os

ATTACK = "{{ cookiecutter.attack }}"

if ATTACK == "symlink":
    os.symlink("/etc/passwd", "passwd")
elif ATTACK == "escape":
    with open("../../escaped.txt", "w") as fh:
        fh.write("outside the project")
    os.symlink("../outside", "inside-link")
