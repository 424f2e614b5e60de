import os

with open("post_gen.txt", "w") as fh:
    fh.write("post " + ",".join(sorted(os.listdir("."))) + "\n")
