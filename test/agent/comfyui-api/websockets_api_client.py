"""A ComfyUI client written the way ComfyUI's script_examples/websockets_api_example.py is written:
queue a prompt with urllib (a form-encoded POST, as Python sends it), follow /ws until the final
`executing` with node None, then read the history and fetch each image through /view.

Only the server address differs from the example: it is the fabric's `host:port/comfyui`. The
credentials, when given in GPUFABRIC_TOKEN, go in an Authorization header; through
`gpufabric comfyui proxy` the client sends none.

Usage: python3 websockets_api_client.py <server address> <prompt.json>; prints a JSON summary.
"""
import hashlib
import json
import os
import sys
import urllib.parse
import urllib.request
import uuid

import websocket  # websocket-client (Debian: python3-websocket)

server_address = sys.argv[1]
client_id = str(uuid.uuid4())
token = os.environ.get("GPUFABRIC_TOKEN")
headers = {"Authorization": "Bearer " + token} if token else {}


def queue_prompt(prompt, prompt_id):
    p = {"prompt": prompt, "client_id": client_id, "prompt_id": prompt_id}
    data = json.dumps(p).encode("utf-8")
    req = urllib.request.Request("http://{}/prompt".format(server_address), data=data, headers=headers)
    return json.loads(urllib.request.urlopen(req).read())


def get_image(filename, subfolder, folder_type):
    data = {"filename": filename, "subfolder": subfolder, "type": folder_type}
    url_values = urllib.parse.urlencode(data)
    req = urllib.request.Request("http://{}/view?{}".format(server_address, url_values), headers=headers)
    with urllib.request.urlopen(req) as response:
        return response.read()


def get_history(prompt_id):
    req = urllib.request.Request("http://{}/history/{}".format(server_address, prompt_id), headers=headers)
    with urllib.request.urlopen(req) as response:
        return json.loads(response.read())


def get_images(ws, prompt):
    prompt_id = str(uuid.uuid4())
    queued = queue_prompt(prompt, prompt_id)
    seen = []
    while True:
        out = ws.recv()
        if isinstance(out, str):
            message = json.loads(out)
            seen.append(message["type"])
            if message["type"] == "executing":
                data = message["data"]
                if data["node"] is None and data["prompt_id"] == prompt_id:
                    break  # Execution is done
        else:
            continue  # previews are binary data

    history = get_history(prompt_id)[prompt_id]
    output_images = {}
    for node_id in history["outputs"]:
        node_output = history["outputs"][node_id]
        images_output = []
        if "images" in node_output:
            for image in node_output["images"]:
                image_data = get_image(image["filename"], image["subfolder"], image["type"])
                images_output.append(image_data)
        output_images[node_id] = images_output
    return prompt_id, queued, seen, history, output_images


with open(sys.argv[2]) as f:
    prompt = json.load(f)

ws = websocket.WebSocket()
ws.connect("ws://{}/ws?clientId={}".format(server_address, client_id), header=["{}: {}".format(k, v) for k, v in headers.items()])
prompt_id, queued, seen, history, images = get_images(ws, prompt)
ws.close()

print(json.dumps({
    "prompt_id": prompt_id,
    "queued": queued,
    "messages": seen,
    "status": history["status"]["status_str"],
    "images": {node: [{"bytes": len(b), "png": b[:8] == b"\x89PNG\r\n\x1a\n", "sha256": hashlib.sha256(b).hexdigest()} for b in imgs] for node, imgs in images.items()},
}))
